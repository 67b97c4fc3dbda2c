// The io/ entry points: a file becomes (modality, transform parameters, byte stream) for the
// model to code, and the three become the file again. The parameter bytes are specified in
// io/TRANSFORMS.md; the archive stores them verbatim.
//
//   flatten:   file --detect--> modality --parse/decode--> params + stream
//   unflatten: params + stream --> the original file (byte-exact transforms) or a PNG,
//              WAV or FLAC with identical pixels or samples (--pixels / --samples)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/detect.h"
#include "io/tiles.h"

namespace mbz::io {

struct FlattenOptions {
  std::optional<Modality> as;  // --as: code the input as this modality, or fail saying why
  bool pixels = false;         // --pixels: decode compressed images (PNG, JPEG, GIF, ...) to pixels
  bool samples = false;        // --samples: decode compressed audio (FLAC, Ogg, ...) to samples
  int tile = 0;                // tile side T: 0 for kDefaultTile, else 4, 8 or 16
};

struct Flattened {
  Modality modality = Modality::kRaw;
  // Transform parameters for the archive header, at most kMaxParamsSize bytes; empty for
  // raw and text. First byte: TransformKind; second: its version (io/TRANSFORMS.md).
  std::vector<uint8_t> params;
  std::vector<uint8_t> stream;  // the bytes the model codes (raw and text: the file itself)
};

// The first byte of non-empty transform parameters. Values never change meaning.
enum class TransformKind : uint8_t {
  kImageExact = 1,    // PNM/BMP: header and trailer verbatim, pixels as tiles; byte-exact
  kImagePixels = 2,   // decoded image (--pixels): tiles; decompresses to a PNG
  kAudioExact = 3,    // 16-bit PCM WAV/AIFF: header and trailer verbatim, samples LE; byte-exact
  kAudioSamples = 4,  // decoded audio (--samples): samples LE; decompresses to WAV or FLAC
};

// The version of each kind's layout that this build writes and reads.
inline constexpr uint8_t kTransformVersion = 1;

// Chooses the transform and produces the stream. Byte-exact whenever the default applies:
//   - PNM and 24/32-bit uncompressed BMP: kImageExact; 16-bit PCM WAV/AIFF: kAudioExact;
//   - compressed images and audio: their bytes as raw, unless options.pixels / .samples;
//   - text: the bytes as text; anything else, or anything that fails to parse: raw.
// Never throws for unknown or broken input on its own. It throws mbz::Error when the caller
// insisted: options.as names a modality the input cannot be coded as (kUnsupportedInput,
// saying why and what would work), or options.pixels / .samples meet an image or audio
// file that cannot be decoded exactly to 8-bit pixels / 16-bit samples (kUnsupportedInput);
// and for an invalid options.tile or options.as (kUsageBadArgument).
Flattened flatten(std::span<const uint8_t> file, const FlattenOptions& options);

// The exact inverse of flatten. Checks the parameters (kind, version, every field's range)
// and that the stream has exactly the size they imply before allocating anything, and
// throws mbz::Error naming the field otherwise: kFormatField (field out of range, kind not
// valid for the modality), kFormatVersion (a version this build does not read),
// kCorruptTruncated / kCorruptTrailingData (parameters too short / too long), kCorruptChunk
// (stream size disagrees with the parameters).
std::vector<uint8_t> unflatten(Modality modality, std::span<const uint8_t> params,
                               std::span<const uint8_t> stream);

// What unflatten produces, for `mbz info` and for naming the output: "byte-exact original",
// "byte-exact original (BMP, 640x480, 3 channels, 8x8 tiles)", "PNG with identical pixels
// (from JPEG, ...)", "FLAC with identical samples (...)". Throws like unflatten on bad params.
std::string describe(Modality modality, std::span<const uint8_t> params);

// True when unflatten rebuilds the very bytes flatten was given (raw, text, kImageExact,
// kAudioExact); false for kImagePixels / kAudioSamples, whose output is a new PNG, WAV or
// FLAC with the same pixels or samples. Those output bytes depend on the stb_image_write
// and libsndfile/libFLAC versions, so an archive should not checksum them across machines.
bool restores_original(Modality modality, std::span<const uint8_t> params);

// The extension the output needs when it is not the original file: ".png", ".wav" or
// ".flac" for kImagePixels / kAudioSamples, "" when unflatten rebuilds the original bytes.
std::string output_extension(Modality modality, std::span<const uint8_t> params);

// Units for `mbz score`: subpixels = width * height * channels of the image (a constant
// alpha channel left out of the stream still counts: it is part of the image); samples =
// frames * channels. Zero when not applicable.
struct Units {
  uint64_t subpixels = 0;
  uint64_t samples = 0;
};
Units units(Modality modality, std::span<const uint8_t> params);

// The shape of an image stream, for models that condition on pixel position and for
// `mbz sample`. nullopt for modalities other than image.
struct ImageParams {
  TransformKind kind = TransformKind::kImageExact;
  Format source = Format::kUnknown;  // the file the pixels came from
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;  // channels in the stream (the image's, less a dropped alpha)
  uint32_t tile = 0;
  std::optional<uint8_t> alpha;  // the constant alpha channel left out of the stream

  TileGeometry geometry() const { return {width, height, channels, tile}; }
};
std::optional<ImageParams> image_params(Modality modality, std::span<const uint8_t> params);

// The shape of an audio stream: 16-bit little-endian samples, `channels` interleaved.
struct AudioParams {
  TransformKind kind = TransformKind::kAudioExact;
  Format source = Format::kUnknown;
  uint16_t channels = 0;
  uint32_t sample_rate = 0;
  uint64_t frames = 0;
};
std::optional<AudioParams> audio_params(Modality modality, std::span<const uint8_t> params);

}  // namespace mbz::io
