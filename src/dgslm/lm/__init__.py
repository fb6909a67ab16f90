"""SpeechDLM: the two-channel dialogue language model, its checkpoints, generation, training."""
