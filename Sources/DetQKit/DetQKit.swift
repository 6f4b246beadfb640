// DetQKit: placeholder until its first piece lands.
