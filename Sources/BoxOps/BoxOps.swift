// BoxOps: placeholder until its first piece lands.
