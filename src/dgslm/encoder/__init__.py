"""Speech to units: HuBERT features (or log-mel/MFCC) quantised by k-means."""
