"""Turn-taking evaluation of stereo dialogues (IPUs, pauses, gaps, overlaps)."""
