"""Call recording: policy per service/queue, the stereo recording's life on the bus,
background transcode to Ogg Opus, retention purge, playback (docs/recording.md)."""
