"""Units to speech: the unit HiFi-GAN vocoder."""
