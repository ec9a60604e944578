"""evse"""
