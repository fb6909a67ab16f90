"""From a stereo prompt to a continued stereo dialogue; model files and the cache."""
