"""Sources: fetch news and price feeds and turn each item into one typed event.

No rule logic lives here.
"""
