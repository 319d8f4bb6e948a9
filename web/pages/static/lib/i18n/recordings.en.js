export default {
  "rec.empty": "no audio: the call was not answered",
  "rec.missing": "recording missing",
  "rec.denied": "recording: not yours to hear",
  "rec.failed": "recording unavailable"
};
