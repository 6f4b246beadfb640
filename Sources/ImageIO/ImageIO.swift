// ImageIO: placeholder until its first piece lands.
