# boot.py: runs first on every reset. Keep it tiny; main.py does the work.
