"""Training utilities shared by the SpeechDLM and vocoder trainers (checkpoints, resume, distributed, logging)."""
