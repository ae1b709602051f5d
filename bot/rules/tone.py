"""Readout tone: hope vs friction, scored from a weighted phrase lexicon.

Official readouts speak in code. The lexicon (docs/tone-lexicon.md says where each
class and weight comes from) covers the diplomatic register of MOFCOM, Xinhua, the
Foreign Ministry, Treasury, USTR and the White House, on headlines and on readout
body text: "candid, in-depth and constructive", "fruitful", "positive progress",
"important consensus", "win-win", "stable footing" signal hope; "firmly opposes",
"strongly dissatisfied", "unilateral bullying", "resolute countermeasures", "not the
right way", "currency manipulator" signal friction; "frank" alone leans to friction.
Weights come in classes: ±1.0 for the register's fixed formulas, ±0.6–0.8 for
ordinary evaluative words, ±0.3–0.5 for weak or ambiguous ones. The raw score is
the sum of the weights found, and `tone_score = tanh(raw)`, in [-1, 1] (one
"constructive" ≈ 0.76, two strong hope terms ≈ 0.96).

Negation: if one of the few words before a phrase (same clause) is a negator
("not", "no", "never", "far from", "yet to", "failed to", "...n't"), a hope term
counts as mild friction (weight × -0.5) and a friction term as mild hope (weight ×
-0.4: "does not want to decouple"). A double negative stays a threat: when a
negated verb of restraint stands between ("does not rule out countermeasures",
"will not hesitate to retaliate", "will never accept bullying"), the phrase keeps
its weight; so does a phrase after a negated verb of change ("failed to alter unfair
practices"). Quote marks around words are ignored ("'Very Good' Call").
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.models import Tone
from bot.rules.matcher import (
    FLAGS,
    TOKEN_RE,
    Anchor,
    Needs,
    check_text_term,
    text_term_anchor,
    text_term_pattern,
)

NEUTRAL_BAND = 0.1
"""|tone_score| below this is neutral."""
NEGATED_HOPE_FACTOR = -0.5
NEGATED_FRICTION_FACTOR = -0.4
NEGATION_WINDOW = 3
"""How many words before a phrase are searched for a negator."""
MAX_WEIGHT = 3.0

_HOPE_FORMULAS = 1.0
_HOPE = 0.7
_HOPE_WEAK = 0.4
_FRICTION_FORMULAS = -1.0
_FRICTION = -0.7
_FRICTION_WEAK = -0.4

DEFAULT_LEXICON: dict[str, float] = {
    # --- hope: the register's fixed formulas -------------------------------------
    "constructive": _HOPE_FORMULAS,
    "productive": _HOPE_FORMULAS,
    "fruitful": _HOPE_FORMULAS,
    "important consensus": _HOPE_FORMULAS,
    "reached consensus": _HOPE_FORMULAS,
    "basic consensus": _HOPE_FORMULAS,
    "substantial progress": _HOPE_FORMULAS,
    "important progress": _HOPE_FORMULAS,
    "positive progress": _HOPE_FORMULAS,
    "concrete progress": _HOPE_FORMULAS,
    "good progress": 0.9,
    "win-win": _HOPE_FORMULAS,
    "mutually beneficial": _HOPE_FORMULAS,
    "mutual benefit": 0.8,
    "benefit both sides": 0.8,
    "benefits both": 0.8,
    "benefit both": 0.8,
    "breakthrough": 0.9,
    "framework agreement": 0.9,
    "very good call": 0.9,
    "very good phone call": 0.9,
    "great call": 0.8,
    "good call": 0.7,
    "good talks": 0.7,
    "great talks": 0.7,
    "excellent relationship": _HOPE_FORMULAS,
    "very good relationship": 0.9,
    "positive results": 0.9,
    "positive outcomes": 0.9,
    "good news": 0.8,
    # --- hope: ordinary evaluative words -----------------------------------------
    "positive": 0.6,
    "progress": 0.6,
    "consensus": 0.8,
    "agreed": _HOPE,
    "agreement": _HOPE_WEAK,
    "pragmatic": 0.5,
    "candid": _HOPE_WEAK,
    "in-depth": 0.3,
    "mutual respect": 0.5,
    "shared interests": 0.6,
    "common ground": 0.5,
    "stable footing": 0.8,
    "solid footing": 0.8,
    "stabilize": 0.6,
    "stabilise": 0.6,
    "stabilizing": 0.6,
    "healthy and stable": 0.8,
    "ease tensions": 0.8,
    "defuse*": 0.7,
    "thaw*": 0.6,
    "dispute cools": 0.8,
    "tensions cool": 0.8,
    "hard-won": 0.6,
    "jointly uphold*": 0.6,
    "ease": 0.5,
    "eases": 0.5,
    "easing": 0.5,
    "easing tensions": 0.8,
    "easing trade tensions": 0.8,
    "lower tensions": 0.8,
    "lowering tensions": 0.8,
    "reduce tensions": 0.8,
    "reducing tensions": 0.8,
    "calm tensions": 0.8,
    "cool tensions": 0.8,
    "cool off tensions": 0.8,
    "de-escalat*": 0.8,
    "open lines of communication": _HOPE,
    "open channels of communication": _HOPE,
    "intensify communication": 0.6,
    "improved communication*": 0.6,
    "stable, sound and sustainable": _HOPE_FORMULAS,
    "sound and sustainable": 0.8,
    "expressed the hope": 0.5,
    "expressed hope": 0.5,
    "important step": 0.6,
    "resolving differences": 0.6,
    "equal dialogue": 0.6,
    "preliminary understanding": 0.8,
    "door is wide open": 0.6,
    "door is open": 0.5,
    "good sign": 0.6,
    "close to completion": 0.6,
    "trust and cooperation": 0.7,
    "boost economic ties": 0.7,
    "boost ties": 0.6,
    "improve communication*": 0.6,
    "responsibly manage": 0.6,
    "further engagement": 0.6,
    "truce": _HOPE_WEAK,
    "ceasefire": 0.5,
    "cease-fire": 0.5,
    "trade deal": _HOPE_WEAK,
    "cooperation": _HOPE_WEAK,
    "optimistic": _HOPE,
    "optimism": _HOPE,
    "amazing": 0.6,
    "hopeful": _HOPE,
    "goodwill": 0.6,
    "good will": 0.6,
    "work together": 0.5,
    # the register's images of a steady relationship ("a 'ballast' for the overall relationship",
    # "the world is big enough for both of our countries to thrive", "injecting stability")
    "ballast": 0.8,
    "big enough": 0.6,
    "stability": 0.5,
    "rapport": 0.6,
    "mend": 0.6,
    "mends": 0.6,
    "mending": 0.6,
    "step forward": 0.6,
    "steps forward": 0.6,
    "rise above": 0.6,
    "good chance": 0.5,
    "promising": 0.6,
    # the verb, not the adjective: "promising new tariffs" is a threat
    "promising new": -0.4,
    "promising more": -0.4,
    "traction": 0.5,
    "great success": 0.8,
    "always open": 0.5,
    "strengthen communication": 0.6,
    "communication channels": 0.5,
    "nearing a deal": 0.5,
    "nearing deal": 0.5,
    "close to a deal": 0.5,
    # an end to the trade war ("signs that the trade war could be ending", "call off their trade war")
    "end the trade war": 0.7,
    "end trade war": 0.7,
    "ending the trade war": 0.7,
    "end to the trade war": 0.7,
    "call off": 0.5,
    "stop the trade war": 0.7,
    # the channels kept open ("emphasized the importance of keeping channels of communication open")
    "channels of communication": 0.6,
    "lines of communication": 0.6,
    # the US officials' plain words for progress and calm ("Mnuchin says having good
    # conversations in China", "Tai says she aims to reduce U.S.-China tensions", "Wants to Dial
    # Down Temperature", "We want China's economy to flourish", "a real structural change",
    # "a transformative deal that will bring benefits to both countries")
    "good conversation*": 0.6,
    "reduce the tensions": 0.8,
    "reduce US-China tensions": 0.8,
    "reduce U.S.-China tensions": 0.8,
    "ease US-China tensions": 0.8,
    "ease U.S.-China tensions": 0.8,
    "dial down": 0.6,
    "lower the temperature": 0.6,
    "turn down the temperature": 0.6,
    "flourish": 0.6,
    "fair deal": 0.5,
    "structural change*": 0.5,
    "transformative": 0.6,
    "benefits to both": 0.8,
    "benefit to both": 0.8,
    "greater benefits": 0.5,
    "stand to benefit": 0.5,
    "open to discussion*": 0.6,
    "made headway": 0.6,
    "making headway": 0.6,
    # (blind60: "strong complementarity … resilience of economic and trade relations", "Stabilising
    # the relationship", "approached it with great respect", "came with great sincerity", "a very,
    # very good negotiation", "Warmer feelings", "We are ready to make a deal", "Trump Strikes Upbeat
    # Notes", "Pull the Trade War Back From the Brink")
    "complementar*": 0.6,
    "resilien*": 0.5,
    "stabilising": 0.6,
    "stabilizes": 0.6,
    "stabilises": 0.6,
    "great respect": 0.5,
    "great sincerity": 0.6,
    "good negotiation*": 0.6,
    "warmer": 0.5,
    "make a deal": 0.4,
    "ready to make a deal": 0.6,
    "back from the brink": 0.6,
    # ("China hopes for trade war solution at G20")
    "solution": 0.4,
    "solutions": 0.4,
    # (blind65: "Restore China-U.S. Economic Cooperation to the Right Track", "new important
    # opportunities for … China US economic and trade relations"; not "momentum", which an economy
    # also loses)
    "right track": 0.6,
    # (readout_blind65: "he'd like to deescalate it", "It was a good visit", "A very good meeting
    # today with China", "more talks with them in the next few weeks", "manage the competition
    # responsibly")
    "deescalat*": 0.8,
    "good visit": 0.6,
    "good meeting": 0.6,
    "more talks": 0.4,
    "responsibly": 0.4,
    "opportunities": 0.4,
    "back on track": 0.7,
    # confidence about a deal, in the advisers' words ("Kudlow staying 'bullish'", "'Great
    # Progress'", "'Closer and Closer'", "open to talks")
    "great progress": 0.9,
    "bullish": 0.6,
    "confident": 0.5,
    "closer": 0.5,
    "open to talks": 0.6,
    "open to negotiations": 0.6,
    "good relations": 0.6,
    "good working relationship": 0.8,
    "friendship": 0.6,
    # the register's "work in the same direction", "meet each other halfway"
    "same direction": 0.6,
    "halfway": 0.6,
    # the register's steady course ("stay the right course and ensure the steady sailing"),
    # shared interests ("in the interests of both countries"), purchases promised
    "right course": 0.5,
    "steady": 0.4,
    "interests of both": 0.6,
    "increase purchases": 0.6,
    "leap forward": 0.6,
    "effective communication": 0.6,
    # communication kept up, in the readouts' words ("will maintain close communication")
    "close communication": 0.6,
    "maintain communication": 0.5,
    # hope named in market and news copy ("Stocks surge as investors pin hopes on … truce",
    # "yuan soars … on hopes that Trump considering ditching some tariffs")
    "on hopes": 0.6,
    "pin hopes": 0.6,
    "pins hopes": 0.6,
    "pinning hopes": 0.6,
    "hopes for": 0.5,
    "hopes of": 0.5,
    "hopes that": 0.5,
    "raises hopes": 0.6,
    "raised hopes": 0.6,
    "hopes rise": 0.6,
    "bridge differences": 0.7,
    "bridged differences": 0.7,
    "have a deal": 0.6,
    "come down": 0.5,
    "coming down": 0.5,
    "reset": 0.5,
    "friends and partners": 0.7,
    "partners and friends": 0.7,
    "ease trade tensions": 0.8,
    "eases trade tensions": 0.8,
    "eased trade tensions": 0.8,
    "brighten*": 0.5,
    "armistice": 0.4,
    # a countermeasure taken down ("China halts retaliatory port fee … in trade thaw"): the
    # adjective names what ends, not a new blow
    "halts retaliatory": 0.4,
    "suspends retaliatory": 0.4,
    "lifts retaliatory": 0.4,
    "removes retaliatory": 0.4,
    "scraps retaliatory": 0.4,
    # verbs of praise in all their forms ("China, US hail trade truce", "Trump hails …")
    "hail": 0.6,
    "hails": 0.6,
    "hailed": 0.6,
    "welcome": 0.5,
    "welcomed": 0.5,
    "welcomes": 0.5,
    "resolve differences": 0.6,
    "properly handle": 0.5,
    "properly manage": 0.5,
    # --- friction: the register's fixed formulas ----------------------------------
    "firmly oppose*": _FRICTION_FORMULAS,
    "strongly oppose*": _FRICTION_FORMULAS,
    "resolutely oppose*": _FRICTION_FORMULAS,
    "firmly deplore*": _FRICTION_FORMULAS,
    "strongly condemn*": _FRICTION_FORMULAS,
    "strongly dissatisfied": _FRICTION_FORMULAS,
    "strong dissatisfaction": 0.9 * _FRICTION_FORMULAS,
    "countermeasure*": _FRICTION_FORMULAS,
    "counter-measure*": _FRICTION_FORMULAS,
    "resolute measures": _FRICTION_FORMULAS,
    "necessary measures": 0.8 * _FRICTION_FORMULAS,
    "measures necessary": 0.8 * _FRICTION_FORMULAS,
    "qualitative measures": 0.8 * _FRICTION_FORMULAS,
    "comprehensive measures": -0.6,
    "no winner in a trade war": -0.7,
    "no winners in a trade war": -0.7,
    "fight to the end": -1.2,
    "not the right way": 0.9 * _FRICTION_FORMULAS,
    "wrong way": 0.8 * _FRICTION_FORMULAS,
    "bullying": _FRICTION_FORMULAS,
    "blackmail*": _FRICTION_FORMULAS,
    "economic coercion": _FRICTION_FORMULAS,
    "currency manipulator": 0.9 * _FRICTION_FORMULAS,
    "unreliable entity list": 0.9 * _FRICTION_FORMULAS,
    "serious concern*": 0.9 * _FRICTION_FORMULAS,
    "grave concern*": 0.9 * _FRICTION_FORMULAS,
    # --- friction: ordinary evaluative words --------------------------------------
    "oppose*": _FRICTION,
    "condemn*": 0.9 * _FRICTION_FORMULAS,
    "deplore*": _FRICTION,
    "dissatisfaction": -0.6,
    "dissatisfied": _FRICTION,
    "frank exchange*": -0.8,
    "frank discussion*": -0.6,
    "frank": -0.5,
    "raised concerns": -0.6,
    "raises concerns": -0.6,
    "raise concerns": -0.6,
    "raising concerns": -0.6,
    # ("Biden warns Xi of 'consequences'"; China's "will bear all the consequences")
    "consequences": -0.5,
    "issues of concern": -0.5,
    "concerns about": _FRICTION_WEAK,
    "bully": -0.8,
    "coercion": -0.8,
    "unilateralism": _FRICTION,
    "unilateral": -0.5,
    "protectionism": -0.6,
    "protectionist": -0.6,
    "retaliat*": -0.9,
    "escalat*": _FRICTION,
    "tit-for-tat": _FRICTION,
    "hit* back": -0.8,
    "strik* back": -0.8,
    "struck back": -0.8,
    "counter-attack*": -0.9,
    "counterattack*": -0.9,
    "slams": _FRICTION,
    "slammed": _FRICTION,
    "hypocritical": -0.8,
    "unjustified": _FRICTION,
    "unacceptable": -0.8,
    "unfair": -0.5,
    "threat*": -0.5,
    "warns": -0.5,
    "resolute": -0.6,
    "resolutely": -0.6,
    "take measures": _FRICTION,
    "severely hurt": -0.8,
    "regret*": -0.6,
    "regretful": -0.6,
    "suppression": -0.8,
    "containment": -0.6,
    "violat*": -0.6,
    "correct its mistakes": -0.6,
    "wrong practices": _FRICTION,
    "wrong practice": _FRICTION,
    "erroneous practice*": _FRICTION,
    "demands": -0.4,
    "suppress": -0.8,
    "suppressing": -0.8,
    "not negotiable": -0.6,
    "expressed concern*": -0.6,
    "voiced concern*": -0.6,
    "extreme pressure": -0.7,
    "maximum pressure": -0.7,
    "lashes out": -0.7,
    "lashed out": -0.7,
    "lambast*": -0.7,
    "furious": -0.7,
    "pay the price": -0.6,
    "paying price": -0.6,
    "paying the price": -0.6,
    "will rue": -0.6,
    "shocked": -0.5,
    "severe impact": -0.5,
    "urges the U.S. to stop": -0.6,
    "urges U.S. to stop": -0.6,
    "urges US to stop": -0.6,
    "enrage*": -0.7,
    "weaponi*": -0.7,
    "grim outlook": -0.5,
    "dashes hopes": -0.7,
    "dashed hopes": -0.7,
    "dash hopes": -0.7,
    "hopes fade": -0.6,
    "fading hopes": -0.6,
    "dims hopes": -0.6,
    "dimmed hopes": -0.6,
    "hostility": -0.7,
    "accuses": -0.5,
    "accused": -0.5,
    "lose effect": -0.7,
    "same scale": -0.8,
    "legitimate rights and interests": -0.7,
    "defend the interests": -0.6,
    "defend its interests": -0.6,
    "safeguard its interests": -0.6,
    "safeguard the interests": -0.6,
    "void": -0.5,
    "invalid": -0.5,
    "red line*": -0.6,
    "stalled": _FRICTION,
    "broke down": -0.9,
    "collapsed": -0.8,
    "talks collapse": -0.8,
    "negotiations collapse": -0.8,
    "collapse of talks": -0.8,
    "setback": -0.5,
    "setbacks": -0.5,
    "breaking consensus": -0.8,
    "baseless": -0.7,
    "derail*": -0.6,
    "not good for": -0.6,
    "immediately withdraw": -0.6,
    "compounding its mistake": -0.7,
    "large mistake": -0.6,
    "big mistake": -0.6,
    "areas of disagreement": -0.6,
    "suffer": -0.4,
    "walked away": -0.8,
    "trade war": _FRICTION_WEAK,
    "tensions": -0.3,
    "dispute": -0.4,
    "disputes": -0.4,
    # tensions said to grow ("amid mounting trade tensions") weigh more than tensions named
    "mounting tensions": -0.6,
    "mounting trade tensions": -0.6,
    "rising tensions": -0.6,
    "rising trade tensions": -0.6,
    "heightened tensions": -0.6,
    "heightened trade tensions": -0.6,
    "escalating tensions": -0.8,
    "escalating trade tensions": -0.8,
    "in doubt": -0.6,
    # expectations played down before talks ("China tones down expectations ahead of talks")
    "tones down expectations": -0.6,
    "lowers expectations": -0.6,
    "dampens expectations": -0.6,
    "tempers expectations": -0.6,
    "plays down expectations": -0.6,
    "interference": -0.5,
    "hegemon*": _FRICTION,
    "provocation*": _FRICTION,
    "provocative": _FRICTION,
    "sanction*": -0.5,
    "disappointed": -0.6,
    "disappointing": -0.6,
    "will not back down": -0.8,
    "decoupl*": -0.5,
    # harm done, in the register's words ("has seriously undermined normal economic and trade
    # cooperation", "seriously harmed China's interests", "will only harm and isolate itself")
    "undermin*": -0.7,
    "undercut*": -0.6,
    "harm": -0.5,
    "harms": -0.5,
    "harmed": -0.6,
    "damaged": -0.6,
    "backfire*": -0.6,
    "not conducive": -0.8,
    "misconduct": -0.7,
    "wrongdoing": -0.7,
    "pretext": -0.6,
    "flimsy excuse": -0.8,
    "strong concern*": -0.8,
    "overcapacity": -0.5,
    # warnings and clashes in every form ("issues ominous warning", "sparks clash")
    "warn": -0.5,
    "warned": -0.5,
    "warning": -0.5,
    "warnings": -0.5,
    "clash": -0.5,
    "clashes": -0.5,
    "clashed": -0.5,
    "catastrophic": -0.6,
    # a trade war said to get worse ("trade war heats up", "tensions rise")
    "heats up": -0.6,
    "heat up": -0.6,
    "heating up": -0.6,
    "war intensif*": -0.5,
    "tensions intensif*": -0.5,
    "dispute intensif*": -0.5,
    "fears intensif*": -0.5,
    "tensions rise": -0.6,
    "tensions rising": -0.6,
    "tensions grow": -0.6,
    "tensions mount": -0.6,
    "tensions soar": -0.6,
    "tensions flare": -0.6,
    "bitter end": -1.0,
    "vows to fight": -0.8,
    # a claim rejected as untrue, in the spokespeople's words ("does not comport with facts",
    # "groundless accusations", "smears")
    "not comport": -0.6,
    "not in line with the facts": -0.6,
    "groundless": -0.7,
    "smear*": -0.7,
    "slander*": -0.7,
    "distort*": -0.6,
    "extortion": -0.8,
    # a policy called useless ("more tariffs is not the solution", "simply does not work"); a
    # bare "hurt" stays out: "China says trade war hurts everyone" is a complaint, not friction
    "not the solution": -0.7,
    "not the answer": -0.6,
    "does not work": -0.5,
    "immediately stop": -0.6,
    "non-market": -0.5,
    "ball is in": -0.5,
    "not afraid": -0.7,
    "never afraid": -0.7,
    "complaints": -0.4,
    "necessary actions": 0.8 * _FRICTION_FORMULAS,
    "lack of respect": -0.6,
    "currency manipulation": -0.8,
    "panic": -0.5,
    "incompeten*": -0.6,
    # confrontation and its cost ("conflict and confrontation has unbearable consequences"),
    # blame ("irresponsible to casually accuse"), a reply promised ("we must react")
    "confrontation": -0.6,
    # ... but the formula "cooperation benefits both sides, confrontation harms both" pleads for
    # cooperation: its second half is not friction
    "confrontation harms both": 0.2,
    "confrontation hurts both": 0.2,
    "unbearable": -0.5,
    "unrealistic": -0.5,
    "irresponsible": -0.6,
    "accuse": -0.5,
    "must react": -0.6,
    "criticiz*": -0.5,
    "criticis*": -0.5,
    "abusing": -0.6,
    "abuse of": -0.6,
    "abuses": -0.6,
    "abused": -0.6,
    "not the correct way": 0.9 * _FRICTION_FORMULAS,
    "will not work": -0.5,
    "dead end": -0.6,
    "play with fire": -0.9,
    "playing with fire": -0.9,
    "tense ties": -0.5,
    "tense relations": -0.5,
    "fraying": -0.6,
    "frayed": -0.6,
    "falling short": -0.6,
    "fall short": -0.6,
    "falls short": -0.6,
    "lagging": -0.4,
    "reckless": -0.6,
    "worsens": -0.5,
    "worsening": -0.5,
    "will react": -0.5,
    "cannot give in": -0.6,
    "never give in": -0.6,
    "will not give in": -0.6,
    # the protest formula ("has expressed strong protest and will make solemn representations")
    "solemn representations": _FRICTION_FORMULAS,
    "stern representations": _FRICTION_FORMULAS,
    "lodge* representations": -0.8,
    "strong protest*": 0.9 * _FRICTION_FORMULAS,
    "lodge* protest*": -0.8,
    "lodge* a protest": -0.8,
    # blame for starting the trade war ("This tariff war was initiated by the United States",
    # "capriciously initiate the trade war")
    "initiat* the trade war": -0.8,
    "initiat* a trade war": -0.8,
    "started the trade war": -0.8,
    "started a trade war": -0.8,
    "provoked the trade war": -0.8,
    "provoked a trade war": -0.8,
    "launched the trade war": -0.8,
    "launched a trade war": -0.8,
    "war was initiated": -0.8,
    "war was started": -0.8,
    "war was provoked": -0.8,
    "war was launched": -0.8,
    # the consensus broken, not reached ("ignored the consensus already reached")
    "ignor* the consensus": -1.0,
    "violat* the consensus": -1.0,
    "abandon* the consensus": -1.0,
    "went back on": -0.6,
    "backtrack*": -0.6,
    "fight it to the end": -1.2,
    "fight until the end": -1.2,
    # the threat of a reply ("cannot simply sit idly by", "will not stand idly by"); the phrase
    # starts after the verb, so "sit"/"stand" keep a negator from turning it
    "idly by": -0.8,
    "unreasonable": -0.5,
    # a reproach turned back ("China rebuffs US criticism …, says Washington is shifting blame",
    # "document blaming America for the trade war")
    "rebuff*": -0.6,
    # the headline's "rejects" (not "reject": "firmly reject the idea that the United States should
    # decouple" refuses a friction, a double negative)
    "rejects": -0.5,
    "shift* blame": -0.6,
    "shifting the blame": -0.6,
    "blaming": -0.5,
    "blames": -0.5,
    "strongly protest*": 0.9 * _FRICTION_FORMULAS,
    # commitments and agreements worn away ("an erosion in commitments", "retreating from
    # commitments", "with complete disregard", "wider relationship crumbles")
    "disregard*": -0.7,
    "retreat* from": -0.6,
    "erosion": -0.5,
    # (not "reneg*": "renegotiate" is no reproach)
    "renege": -0.7,
    "reneged": -0.7,
    "reneges": -0.7,
    "reneging": -0.7,
    "crumbl*": -0.6,
    "not worked": -0.5,
    # the US officials' plain words for friction ("very large challenges", "getting more
    # difficult", "level the playing field", "incredibly aggressive", "a repudiation of the …
    # agreement", "slow-rolling", "talks were going nowhere", "pointed a bazooka at the supply
    # chain", "totally disproportional", "overcapacity is big problem")
    "large challenges": -0.6,
    "serious challenges": -0.6,
    "big challenges": -0.6,
    # (not "the more difficult points" of a deal)
    "getting more difficult": -0.6,
    "becoming more difficult": -0.6,
    "become more difficult": -0.6,
    "grown more difficult": -0.6,
    "level the playing field": -0.6,
    "play by the rules": -0.5,
    "play by our rules": -0.5,
    "aggressive": -0.5,
    "repudiat*": -0.7,
    "slow-roll*": -0.6,
    "slow roll*": -0.6,
    "punish*": -0.6,
    "going nowhere": -0.6,
    "bazooka": -0.6,
    "disproportional": -0.6,
    "disproportionate": -0.6,
    "fundamental concerns": -0.6,
    "big problem": -0.5,
    "serious problem": -0.6,
    "not going to let": -0.5,
    # … and China's ("This trade conflict was initiated by the US alone and it is entirely the one
    # to blame", "hurting itself", "this meaningless tariff numerical game", "arbitrary disruption
    # and damage", "trade wars have no winners", "makes no sense without sincerity", "refrain from
    # artificially impeding")
    "to blame": -0.6,
    "hurting itself": -0.6,
    "hurt itself": -0.6,
    "hurts itself": -0.6,
    "meaningless": -0.6,
    "arbitrar*": -0.5,
    "damage": -0.5,
    "have no winners": -0.7,
    "no winners": -0.7,
    "without sincerity": -0.6,
    "must be sincerity": -0.5,
    "imped*": -0.5,
    "refrain from": -0.5,
    "denounce*": -0.8,
    # (blind58/60: "China rejects US 'numbers game' on tariffs", "Nominee Stands Firm on China", "a
    # very jaundiced view of China", "mutual-assured annoyance", "choke their military capacity",
    # "correct its erroneous actions and cease discriminatory restrictions"; not "contain China",
    # which fired on "Japan restricts chipmaking equipment exports as US seeks to contain China")
    "numbers game": -0.6,
    # (blind56: "China Says won't be 'Bullied' by US", "China prepared for long trade fight")
    "bullied": -0.8,
    "won't be bullied": -0.9,
    "will not be bullied": -0.9,
    "not be bullied": -0.9,
    "trade fight": -0.6,
    "stands firm": -0.6,
    "stand firm": -0.6,
    "jaundiced": -0.6,
    "annoy*": -0.5,
    # (blind65: "People's Daily Opinion Articles Attack U.S. for Launching Sino-U.S. Trade War")
    "attack": -0.5,
    "attacks": -0.5,
    # (readout_blind65: "when the United States is punched, he will punch back harder", "a fierce
    # competition with China", "unsustainable from the Chinese side", "The bad faith and breach of
    # consensus of the US")
    "punch* back": -0.7,
    "fierce competition": -0.5,
    "unsustainable": -0.5,
    "bad faith": -0.8,
    "breach of consensus": -1.0,
    "breach* of the consensus": -1.0,
    "choke": -0.6,
    "erroneous": -0.6,
    "discriminat*": -0.6,
    # a dispute that deepens or flares in the news's words ("as US-China tension deepens",
    # "full-blown trade war", "As China and the US spar", "US-China spat", "showdown with Xi",
    # "New tariffs dampen hopes of a trade deal")
    "tension deepens": -0.6,
    "tensions deepen": -0.6,
    "deepening tensions": -0.6,
    "full-blown trade war": -0.6,
    "spar": -0.6,
    "spars": -0.6,
    "sparring": -0.6,
    "spat": -0.6,
    "showdown": -0.6,
    "dampen* hopes": -0.7,
    "power grab": -0.7,
}

_NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "without",
        "hardly",
        "neither",
        "nor",
        "nothing",
        "cannot",
        "none",
        "lack",
        "lacked",
        "lacking",
    }
)
_NEGATOR_PAIRS = frozenset(
    {
        ("far", "from"),
        ("failed", "to"),
        ("fail", "to"),
        ("fails", "to"),
        ("yet", "to"),
        ("less", "than"),
        ("contrary", "to"),
    }
)
_RESTRAINT = frozenset(
    {
        "rule",
        "rules",
        "ruled",
        "hesitate",
        "back",
        "tolerate",
        "accept",
        "allow",
        "stand",
        "sit",
        "only",
    }
)
"""After a negator these make a double negative or no negation at all ("not rule out
countermeasures", "will never accept bullying", "not only"): the phrase keeps its weight."""
_CHANGE = frozenset(
    {
        "alter",
        "change",
        "changed",
        "stop",
        "stopped",
        "end",
        "ended",
        "correct",
        "corrected",
        "rectify",
        "rectified",
        "address",
        "addressed",
        "fix",
        "remove",
        "removed",
        "abandon",
        "abandoned",
        "reverse",
        "reversed",
        "cease",
        "halt",
        "curb",
    }
)
"""After a negator these take the negation themselves: the phrase after them is asserted
("has failed to alter 'unfair' practices", "did not stop its bullying"), so it keeps its weight."""
_REFUSAL = frozenset({"accept", "tolerate", "allow", "stand", "sit", "back"})
"""Restraint verbs that refuse: they keep a friction phrase ("will never accept bullying"), but
a hope phrase they refuse is negated ("will never accept any agreement that undermines …")."""
_CLAUSE_END = re.compile(r"[.;:!?\n]")
_WORDS = re.compile(r"[\w']+")


def check_lexicon_weight(weight: float) -> float:
    if not -MAX_WEIGHT <= weight <= MAX_WEIGHT or math.isnan(weight):
        raise ValueError(f"lexicon weight must be between -{MAX_WEIGHT:g} and {MAX_WEIGHT:g}")
    return weight


def build_lexicon(
    extra: Mapping[str, float] | None = None, *, replace: bool = False
) -> dict[str, float]:
    """The defaults (unless `replace`) overridden/extended by a rule's own phrases."""
    lexicon: dict[str, float] = {} if replace else dict(DEFAULT_LEXICON)
    for phrase, weight in (extra or {}).items():
        lexicon[" ".join(check_text_term(phrase).lower().split())] = check_lexicon_weight(
            float(weight)
        )
    return lexicon


@dataclass(frozen=True, slots=True)
class ToneResult:
    tone: Tone
    score: float
    raw: float
    terms: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class _Phrase:
    phrase: str
    weight: float
    regex: re.Pattern[str]
    anchor: Anchor | None


def _unquote(text: str) -> str:
    """Quote marks that open or close a word become spaces (same length, offsets kept)."""
    chars = list(text)
    for i, ch in enumerate(chars):
        if ch in "'\"\u2018\u2019\u201c\u201d":
            before = i > 0 and text[i - 1].isalnum()
            after = i + 1 < len(text) and text[i + 1].isalnum()
            if not (before and after):
                chars[i] = " "
    return "".join(chars)


class ToneScorer:
    """Scores text against one lexicon.

    Each phrase has its own compiled pattern and a literal anchor; a text's tokens
    pick the few phrases that can occur, so the cost grows with the text, not the
    lexicon. Overlapping finds resolve to the leftmost, then longest phrase.
    """

    def __init__(self, lexicon: Mapping[str, float]) -> None:
        self.lexicon = {k: v for k, v in lexicon.items() if v != 0}
        self._phrases = sorted(self.lexicon, key=lambda p: -len(text_term_pattern(p)))
        self._entries = [
            _Phrase(
                p, self.lexicon[p], re.compile(text_term_pattern(p), FLAGS), text_term_anchor(p)
            )
            for p in self._phrases
        ]
        self._always = [e for e in self._entries if e.anchor is None]
        self._by_token: dict[str, list[_Phrase]] = {}
        self._by_prefix: dict[str, list[_Phrase]] = {}
        for e in self._entries:
            if e.anchor is not None:
                table = self._by_token if e.anchor.kind == "tok" else self._by_prefix
                table.setdefault(e.anchor.text, []).append(e)
        self._prefixes = sorted(self._by_prefix)

    def needs(self) -> Needs:
        """Anchors of which one must occur for any phrase to score."""
        anchors: set[Anchor] = set()
        for phrase in self._phrases:
            anchor = text_term_anchor(phrase)
            if anchor is None:
                return None
            anchors.add(anchor)
        return frozenset(anchors)

    def _candidates(self, lower: str) -> list[_Phrase]:
        tokens = sorted(set(TOKEN_RE.findall(lower)))
        found: dict[int, _Phrase] = {id(e): e for e in self._always}
        for tok in tokens:
            for e in self._by_token.get(tok, ()):
                found[id(e)] = e
        for prefix in self._prefixes:
            i = bisect.bisect_left(tokens, prefix)
            if i < len(tokens) and tokens[i].startswith(prefix):
                for e in self._by_prefix[prefix]:
                    found[id(e)] = e
        return list(found.values())

    def score(self, text: str) -> ToneResult:
        text = _unquote(text)
        spans: list[tuple[int, int, _Phrase]] = []
        for entry in self._candidates(text.lower()):
            spans.extend(
                (m.start(), m.end(), entry) for m in entry.regex.finditer(text) if m.group(0)
            )
        spans.sort(key=lambda s: (s[0], s[0] - s[1]))
        raw = 0.0
        terms: list[tuple[str, float]] = []
        last_end = -1
        for start, end, entry in spans:
            if start < last_end:
                continue
            last_end = end
            weight = entry.weight
            found = " ".join(text[start:end].lower().split())
            negator = _negator_before(text, start, hope=weight > 0)
            if negator:
                weight *= NEGATED_HOPE_FACTOR if weight > 0 else NEGATED_FRICTION_FACTOR
                at = text.lower().rfind(negator.split()[0], max(0, start - 80), start)
                found = " ".join(text[at:end].lower().split()) if at >= 0 else f"{negator} {found}"
            weight = round(weight + 0.0, 4)
            raw += weight
            terms.append((found, weight))
        score = round(math.tanh(raw), 4)
        if score >= NEUTRAL_BAND:
            tone = Tone.hope
        elif score <= -NEUTRAL_BAND:
            tone = Tone.friction
        else:
            tone = Tone.neutral
        return ToneResult(tone=tone, score=score, raw=round(raw, 4), terms=tuple(terms))


def _negator_before(text: str, start: int, *, hope: bool = False) -> str | None:
    """The negator among the last few words of the clause before `start`, if any.

    None when a verb of restraint follows the negator (a double negative such as
    "does not rule out countermeasures" is still a threat) — except a refusal of a hope
    phrase (`hope`: "will never accept any agreement" is no agreement).
    """
    before = text[max(0, start - 80) : start]
    cut = None
    for cut in _CLAUSE_END.finditer(before):
        pass
    if cut is not None:
        before = before[cut.end() :]
    words: list[str] = [w.lower() for w in _WORDS.findall(before)][-NEGATION_WINDOW:]
    for i in range(len(words) - 1, -1, -1):  # nearest first
        word = words[i]
        negator = None
        if i > 0 and (words[i - 1], word) in _NEGATOR_PAIRS:
            negator = f"{words[i - 1]} {word}"
        elif word in _NEGATORS or word.endswith("n't"):
            negator = word
        if negator is not None:
            if any(w in _CHANGE for w in words[i + 1 :]):
                return None
            restraint = [w for w in words[i + 1 :] if w in _RESTRAINT]
            if restraint and not (hope and all(w in _REFUSAL for w in restraint)):
                return None
            return negator
    return None
