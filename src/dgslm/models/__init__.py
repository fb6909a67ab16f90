"""Model files, found one way for every caller: which files to load (``resolve``), the released
originals and their cache (``released``, ``dgslm download``), and our converted folders
(``convert``, ``dgslm convert``)."""
