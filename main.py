# main.py: placeholder until the app wiring lands.
