"""The two real calls the kit's Asterisk recorded (MixMonitor), and the WAV files it wrote."""

from __future__ import annotations

from pathlib import Path

from tests.telephony.helpers import AMI_DIR, read_truth

ANSWERED = read_truth("inbound_recorded")["calls"][0]
ABANDONED = read_truth("inbound_recorded_abandoned")["calls"][0]
WAV = AMI_DIR / Path(ANSWERED["recording"]).name  # 5.5 s of talk
HEADER_ONLY = AMI_DIR / Path(ABANDONED["recording"]).name  # never answered: 44 bytes
