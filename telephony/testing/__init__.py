"""Stand-ins for Asterisk, for the tests, the bench and `crm-telephony demo`: never imported by the
service's own code paths (`crm-telephony check` talks FastAGI through telephony.agi_client).

- replay: an AMI server replaying real Asterisk 22 traffic.
- agi_caller: Asterisk's side of a FastAGI request made from a recorded (or invented) call.
"""
