// COCO: placeholder until its first piece lands.
