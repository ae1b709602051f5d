"""`python -m bot demo`: a built-in, offline trade-war day through the real pipeline.

`scenario` reads the shipped `scenario.yaml` (real headlines, demo times), `server` serves
it on 127.0.0.1 as RSS feeds and a CBOE-style quote, and `run` points a Readout at that
server and polls until the day is over.
"""
