"""smart_charging"""
