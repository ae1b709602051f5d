"""Readout: alerts on the US-China trade-war tape.

Data flows sources -> events -> rules -> alerts -> delivery -> adapters; each
stage is a subpackage of its own.
"""

__version__ = "0.1.0"
