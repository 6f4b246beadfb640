// Quantization: placeholder until its first piece lands.
