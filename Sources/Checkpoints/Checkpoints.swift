// Checkpoints: placeholder until its first piece lands.
