"""firmware_update"""
