#!/usr/bin/env bash
# Prepares worker/test-data/whisper/ (ignored by git) for the Whisper test in a
# Chromium Web Worker, worker/tests/whisper_in_worker.rs, which fetches these
# files from the test runner's server as a widget fetches a model:
#   tiny.en/{model.bin,config.json,vocabulary.txt}  the verified package files
#   five-sentences.txt, .f32   espeak-ng speech of the text, 16 kHz mono float32
#                              (resampled by our engine's resampler)
#   reference/result.json      faster-whisper's transcripts of the same samples
# and widget/test-data/audio/ for the widget's audio decoding test.
set -euo pipefail
cd "$(dirname "$0")/.."
models=$(scripts/fetch-models.sh)
out=worker/test-data/whisper
mkdir -p "$out/tiny.en" "$out/reference"
for f in model.bin config.json vocabulary.txt; do
  cp -u "$models/tiny.en/$f" "$out/tiny.en/$f"
done
text="The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today."
printf '%s' "$text" > "$out/five-sentences.txt"
espeak-ng -v en-us -s 150 -w "$out/five-sentences.wav" "$text"
cargo run --offline --locked --quiet -p potluck-node --bin potluck -- transcribe \
  "$out/five-sentences.wav" --model "$models/tiny.en" --no-timestamps \
  --save-pcm "$out/five-sentences.f32" > /dev/null
scripts/reference-whisper.sh "$models/tiny.en" "$out/five-sentences.f32" "$out/reference"

# The widget's decoding test (widget/tests/audio_in_browser.rs): the same
# speech as Element sends a voice message (Ogg Opus, 48 kHz, mono), as WAV,
# and the samples above to compare with.
audio=widget/test-data/audio
mkdir -p "$audio"
opusenc --quiet --bitrate 32 "$out/five-sentences.wav" "$audio/five-sentences.ogg"
cp "$out/five-sentences.wav" "$out/five-sentences.f32" "$audio/"

# The transcription end-to-end test (tests/e2e/transcribe.test.mjs): a voice
# message of about 90 s, sentences with pauses of different lengths (SSML
# breaks), as Ogg Opus; faster-whisper's transcript of the same Opus stream
# decoded at 16 kHz, to compare word error rates with.
voice=tests/fixtures/speech/voice-message.txt
ssml="<speak>"
i=0
while IFS= read -r sentence; do
  ssml+="$sentence <break time=\"$((400 + 300 * (i % 4)))ms\"/> "
  i=$((i + 1))
done < "$voice"
ssml+="</speak>"
espeak-ng -m -v en-us -s 150 -w "$audio/voice-message.wav" "$ssml"
opusenc --quiet --bitrate 32 "$audio/voice-message.wav" "$audio/voice-message.ogg"
opusdec --quiet --rate 16000 "$audio/voice-message.ogg" "$audio/voice-message-16k.wav"
cargo run --offline --locked --quiet -p potluck-node --bin potluck -- transcribe \
  "$audio/voice-message-16k.wav" --model "$models/tiny.en" --no-timestamps \
  --save-pcm "$audio/voice-message.f32" > /dev/null
mkdir -p "$audio/voice-message-reference"
# faster-whisper with its defaults (conditioned on the text before), and without.
scripts/reference-whisper.sh "$models/tiny.en" "$audio/voice-message.f32" "$audio/voice-message-reference" --timestamps \
  --condition-on-previous-text --also-unconditioned
echo "$out $audio"
