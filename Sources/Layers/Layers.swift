// Layers: placeholder until its first piece lands.
