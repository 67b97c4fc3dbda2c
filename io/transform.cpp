#include "io/transform.h"

#include <climits>
#include <string>

#include "codec/error.h"
#include "io/audio.h"
#include "io/image.h"
#include "io/params.h"
#include "io/pcm.h"
#include "io/pnm_bmp.h"

namespace mbz::io {
namespace {

// Field values of io/TRANSFORMS.md.
constexpr uint8_t kImageFlagBottomUp = 1;   // kImageExact only
constexpr uint8_t kImageFlagBgr = 2;        // kImageExact only
constexpr uint8_t kImageFlagAlpha = 4;      // a constant last channel is left out of the stream
constexpr uint8_t kAudioFlagBigEndian = 1;  // kAudioExact: the file stores big-endian samples
constexpr uint8_t kAudioFlagLossy = 1;      // kAudioSamples: the source was a lossy codec
constexpr uint8_t kImageOutputPng = 1;

// The fixed part of image params (16 bytes) and audio params (18 bytes) come first, so
// that image_params() / audio_params() read every kind the same way.
constexpr size_t kImageFixedSize = 16;
constexpr size_t kAudioFixedSize = 18;

// ---- Parameters: parsing (with checks) -------------------------------------------------

struct ImageExact {
  ImageParams image;
  RawRaster layout;
  std::span<const uint8_t> header, trailer;
};

struct ImagePixels {
  ImageParams image;
};

struct AudioExact {
  AudioParams audio;
  bool big_endian = false;
  std::span<const uint8_t> header, trailer;
};

struct AudioSamples {
  AudioParams audio;
  bool lossy = false;
  AudioContainer container = AudioContainer::kWav;
  uint32_t bits = 16;
};

// Reads kind and version; the kind must belong to the modality.
TransformKind read_kind(ParamReader& r, Modality modality) {
  const uint8_t kind = r.u8("kind");
  const bool image =
      kind == uint8_t(TransformKind::kImageExact) || kind == uint8_t(TransformKind::kImagePixels);
  const bool audio =
      kind == uint8_t(TransformKind::kAudioExact) || kind == uint8_t(TransformKind::kAudioSamples);
  if ((modality == Modality::kImage && !image) || (modality == Modality::kAudio && !audio)) {
    r.bad("kind", kind, modality == Modality::kImage ? "1 or 2 for an image" : "3 or 4 for audio");
  }
  const uint8_t version = r.u8("version");
  if (version != kTransformVersion) {
    throw Error(ErrorCode::kFormatVersion,
                r.what() + ": transform kind " + std::to_string(kind) + " version " +
                    std::to_string(version) +
                    " was written by a newer mbz; this build reads version " +
                    std::to_string(kTransformVersion));
  }
  return static_cast<TransformKind>(kind);
}

// The fixed 16 bytes shared by both image kinds; returns the kind-specific last byte.
uint8_t read_image_fixed(ParamReader& r, ImageParams& p, uint8_t& flags) {
  p.source = static_cast<Format>(r.u8("source_format"));
  p.tile = r.u8("tile");
  p.width = r.u32("width");
  p.height = r.u32("height");
  const uint32_t channels = r.u8("channels");
  flags = r.u8("flags");
  const uint8_t alpha = r.u8("alpha");
  const uint8_t extra =
      r.u8(p.kind == TransformKind::kImageExact ? "row_padding" : "output_format");
  if (!valid_tile(p.tile)) r.bad("tile", p.tile, "4, 8 or 16");
  if (p.width < 1) r.bad("width", p.width, ">= 1");
  if (p.height < 1) r.bad("height", p.height, ">= 1");
  if (uint64_t{p.width} * p.height > kMaxPixels) {
    r.bad("height", p.height, "width * height <= 2^28");
  }
  if (channels < 1 || channels > 4) r.bad("channels", channels, "1..4");
  const uint8_t allowed = p.kind == TransformKind::kImageExact
                              ? kImageFlagBottomUp | kImageFlagBgr | kImageFlagAlpha
                              : kImageFlagAlpha;
  if (flags & ~allowed) r.bad("flags", flags, "only bits " + std::to_string(allowed) + " set");
  if (flags & kImageFlagAlpha) {
    if (channels != 2 && channels != 4) r.bad("channels", channels, "2 or 4 with a constant alpha");
    p.alpha = alpha;
    p.channels = channels - 1;
  } else {
    if (alpha != 0) r.bad("alpha", alpha, "0 without the alpha flag");
    p.channels = channels;
  }
  return extra;
}

// The fixed 18 bytes shared by both audio kinds.
void read_audio_fixed(ParamReader& r, AudioParams& p, uint8_t& flags) {
  p.source = static_cast<Format>(r.u8("source_format"));
  flags = r.u8("flags");
  p.channels = r.u16("channels");
  p.sample_rate = r.u32("sample_rate");
  p.frames = r.u64("frames");
  if (p.channels < 1) r.bad("channels", p.channels, ">= 1");
  if (p.frames > kMaxSamples / p.channels) r.bad("frames", p.frames, "frames * channels <= 2^28");
}

ImageExact parse_image_exact(ParamReader& r) {
  ImageExact x;
  x.image.kind = TransformKind::kImageExact;
  uint8_t flags = 0;
  const uint8_t padding = read_image_fixed(r, x.image, flags);
  x.layout.format = x.image.source;
  x.layout.width = x.image.width;
  x.layout.height = x.image.height;
  x.layout.channels = x.image.channels + (x.image.alpha ? 1 : 0);
  x.layout.bottom_up = flags & kImageFlagBottomUp;
  x.layout.bgr = flags & kImageFlagBgr;
  x.layout.row_padding = padding;
  check_raw_raster(x.layout);
  x.header = r.blob("header");
  x.trailer = r.blob("trailer");
  x.layout.header_size = x.header.size();
  return x;
}

ImagePixels parse_image_pixels(ParamReader& r) {
  ImagePixels x;
  x.image.kind = TransformKind::kImagePixels;
  uint8_t flags = 0;
  const uint8_t output = read_image_fixed(r, x.image, flags);
  if (output != kImageOutputPng) r.bad("output_format", output, "1 (PNG)");
  return x;
}

AudioExact parse_audio_exact(ParamReader& r) {
  AudioExact x;
  x.audio.kind = TransformKind::kAudioExact;
  uint8_t flags = 0;
  read_audio_fixed(r, x.audio, flags);
  if (x.audio.source != Format::kWav && x.audio.source != Format::kAiff) {
    r.bad("source_format", uint8_t(x.audio.source), "32 (WAV) or 33 (AIFF)");
  }
  if (flags & ~kAudioFlagBigEndian) r.bad("flags", flags, "0 or 1");
  x.big_endian = flags & kAudioFlagBigEndian;
  x.header = r.blob("header");
  x.trailer = r.blob("trailer");
  return x;
}

AudioSamples parse_audio_samples(ParamReader& r) {
  AudioSamples x;
  x.audio.kind = TransformKind::kAudioSamples;
  uint8_t flags = 0;
  read_audio_fixed(r, x.audio, flags);
  if (flags & ~kAudioFlagLossy) r.bad("flags", flags, "0 or 1");
  x.lossy = flags & kAudioFlagLossy;
  const uint8_t container = r.u8("container");
  x.bits = r.u8("bits");
  if (container != uint8_t(AudioContainer::kWav) && container != uint8_t(AudioContainer::kFlac)) {
    r.bad("container", container, "1 (WAV) or 2 (FLAC)");
  }
  x.container = static_cast<AudioContainer>(container);
  if (x.bits != 8 && x.bits != 16) r.bad("bits", x.bits, "8 or 16");
  if (x.audio.sample_rate < 1 || x.audio.sample_rate > INT32_MAX) {
    r.bad("sample_rate", x.audio.sample_rate, "1..2^31-1");
  }
  return x;
}

// Raw and text carry no parameters.
void check_no_params(Modality modality, std::span<const uint8_t> params) {
  if (!params.empty()) {
    throw Error(ErrorCode::kFormatField, std::string(modality_name(modality)) +
                                             " params: expected none, found " +
                                             std::to_string(params.size()) + " bytes");
  }
}

void check_stream_size(const std::string& what, uint64_t expected, size_t found) {
  if (found != expected) {
    throw Error(ErrorCode::kCorruptChunk,
                what + ": parameters call for " + std::to_string(expected) +
                    " stream bytes, the stream has " + std::to_string(found));
  }
}

// ---- Parameters: writing -----------------------------------------------------------------

void write_image_fixed(ParamWriter& w, TransformKind kind, Format source, uint32_t tile,
                       const Image& image, std::optional<uint8_t> alpha, uint8_t flags,
                       uint8_t extra) {
  w.u8(uint8_t(kind));
  w.u8(kTransformVersion);
  w.u8(uint8_t(source));
  w.u8(static_cast<uint8_t>(tile));
  w.u32(image.width);
  w.u32(image.height);
  w.u8(static_cast<uint8_t>(image.channels));
  w.u8(static_cast<uint8_t>(flags | (alpha ? kImageFlagAlpha : 0)));
  w.u8(alpha.value_or(0));
  w.u8(extra);
}

void write_audio_fixed(ParamWriter& w, TransformKind kind, Format source, uint8_t flags,
                       uint16_t channels, uint32_t rate, uint64_t frames) {
  w.u8(uint8_t(kind));
  w.u8(kTransformVersion);
  w.u8(uint8_t(source));
  w.u8(flags);
  w.u16(channels);
  w.u32(rate);
  w.u64(frames);
}

// Header and trailer bytes live in the parameters, which the archive caps at 64 KiB.
void check_params_fit(const char* format, size_t fixed, size_t header, size_t trailer) {
  const uint64_t total = uint64_t{fixed} + 8 + header + trailer;
  if (total > kMaxParamsSize) {
    throw Error(ErrorCode::kUnsupportedInput,
                std::string(format) + ": " + std::to_string(header) + " header and " +
                    std::to_string(trailer) + " trailing bytes do not fit the " +
                    std::to_string(kMaxParamsSize) + "-byte parameter limit");
  }
}

// ---- Flattening ---------------------------------------------------------------------------

Flattened as_bytes(Modality modality, std::span<const uint8_t> file) {
  return {modality, {}, std::vector<uint8_t>(file.begin(), file.end())};
}

// Leaves out a constant alpha channel, then cuts the raster into tiles.
std::vector<uint8_t> tile_image(Image& image, uint32_t tile, std::optional<uint8_t>& alpha) {
  alpha = constant_alpha(image.pixels, image.channels);
  std::vector<uint8_t> pixels =
      alpha ? drop_last_channel(image.pixels, image.channels) : std::move(image.pixels);
  const TileGeometry g{image.width, image.height, image.channels - (alpha ? 1u : 0u), tile};
  return tiles_from_raster(g, pixels);
}

std::vector<uint8_t> untile_image(const ImageParams& p, std::span<const uint8_t> stream) {
  std::vector<uint8_t> raster = raster_from_tiles(p.geometry(), stream);
  return p.alpha ? add_last_channel(raster, p.channels, *p.alpha) : raster;
}

Flattened flatten_image_exact(std::span<const uint8_t> file, uint32_t tile) {
  const RawRaster layout = parse_raw_raster(file);
  const auto header = file.first(layout.header_size);
  const auto payload = file.subspan(layout.header_size, layout.payload_size());
  const auto trailer = file.subspan(layout.header_size + layout.payload_size());
  check_params_fit(format_name(layout.format), kImageFixedSize, header.size(), trailer.size());
  Image image{layout.width, layout.height, layout.channels, raster_from_payload(layout, payload)};
  const uint8_t flags =
      (layout.bottom_up ? kImageFlagBottomUp : 0) | (layout.bgr ? kImageFlagBgr : 0);
  Flattened out{Modality::kImage, {}, {}};
  std::optional<uint8_t> alpha;
  out.stream = tile_image(image, tile, alpha);
  ParamWriter w;
  write_image_fixed(w, TransformKind::kImageExact, layout.format, tile, image, alpha, flags,
                    static_cast<uint8_t>(layout.row_padding));
  w.blob(header);
  w.blob(trailer);
  out.params = w.take();
  return out;
}

Flattened flatten_image_pixels(std::span<const uint8_t> file, uint32_t tile) {
  Image image = decode_image(file);
  const Format source = detect_format(file);
  Flattened out{Modality::kImage, {}, {}};
  std::optional<uint8_t> alpha;
  out.stream = tile_image(image, tile, alpha);
  ParamWriter w;
  write_image_fixed(w, TransformKind::kImagePixels, source, tile, image, alpha, 0, kImageOutputPng);
  out.params = w.take();
  return out;
}

Flattened flatten_audio_exact(std::span<const uint8_t> file) {
  const PcmLayout layout = parse_pcm(file);
  const auto header = file.first(layout.header_size);
  const auto payload = file.subspan(layout.header_size, layout.payload_size());
  const auto trailer = file.subspan(layout.header_size + layout.payload_size());
  check_params_fit(format_name(layout.format), kAudioFixedSize, header.size(), trailer.size());
  Flattened out{Modality::kAudio, {}, std::vector<uint8_t>(payload.begin(), payload.end())};
  if (layout.big_endian) swap_byte_pairs(out.stream);
  ParamWriter w;
  write_audio_fixed(w, TransformKind::kAudioExact, layout.format,
                    layout.big_endian ? kAudioFlagBigEndian : 0, layout.channels,
                    layout.sample_rate, layout.frames);
  w.blob(header);
  w.blob(trailer);
  out.params = w.take();
  return out;
}

Flattened flatten_audio_samples(std::span<const uint8_t> file) {
  DecodedAudio decoded = decode_audio(file);
  const Pcm16& pcm = decoded.pcm;
  Flattened out{Modality::kAudio, {}, samples_to_bytes(pcm.samples)};
  // FLAC in, FLAC out; WAV for everything else, and for a FLAC whose shape libsndfile's FLAC
  // writer refuses (the samples are what must survive, not the container).
  AudioContainer container =
      decoded.format == Format::kFlac ? AudioContainer::kFlac : AudioContainer::kWav;
  if (container == AudioContainer::kFlac &&
      !can_encode(pcm.sample_rate, pcm.channels, container, decoded.bits)) {
    container = AudioContainer::kWav;
  }
  if (!can_encode(pcm.sample_rate, pcm.channels, container, decoded.bits)) {
    throw Error(ErrorCode::kUnsupportedInput,
                std::string(format_name(decoded.format)) + ": " + std::to_string(pcm.channels) +
                    " channels at " + std::to_string(pcm.sample_rate) +
                    " Hz cannot be written back as " + container_name(container));
  }
  ParamWriter w;
  write_audio_fixed(w, TransformKind::kAudioSamples, decoded.format,
                    decoded.lossy ? kAudioFlagLossy : 0, pcm.channels, pcm.sample_rate,
                    pcm.frames());
  w.u8(uint8_t(container));
  w.u8(static_cast<uint8_t>(decoded.bits));
  out.params = w.take();
  return out;
}

// What to say when --as insists on a modality the exact transforms cannot give.
constexpr const char* kPixelsHint =
    "; add --pixels to code its decoded pixels (decompresses to a PNG with identical pixels),"
    " or leave out --as image to code its bytes exactly";
constexpr const char* kSamplesHint =
    "; add --samples to code its decoded samples (decompresses to a WAV or FLAC with identical"
    " samples), or leave out --as audio to code its bytes exactly";

// Runs an exact transform; a kUnsupportedInput error becomes nullopt and its message `why`.
template <typename F>
std::optional<Flattened> try_exact(F&& transform, std::string& why) {
  try {
    return transform();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kUnsupportedInput) throw;
    why = e.what();
    return std::nullopt;
  }
}

Flattened flatten_image(std::span<const uint8_t> file, Format format, const FlattenOptions& options,
                        uint32_t tile) {
  const bool forced = options.as.has_value();
  std::string why;
  if (format == Format::kPnm || format == Format::kBmp || forced) {
    if (auto exact = try_exact([&] { return flatten_image_exact(file, tile); }, why)) {
      return std::move(*exact);
    }
  }
  if (options.pixels) return flatten_image_pixels(file, tile);
  if (!forced) return as_bytes(Modality::kRaw, file);
  if (modality_of(format) == Modality::kImage && format != Format::kPnm && format != Format::kBmp) {
    why = std::string(format_name(format)) +
          " stores compressed pixels, so coding it as an image cannot keep its bytes";
  }
  throw Error(ErrorCode::kUnsupportedInput, why + kPixelsHint);
}

Flattened flatten_audio(std::span<const uint8_t> file, Format format,
                        const FlattenOptions& options) {
  const bool forced = options.as.has_value();
  std::string why;
  if (format == Format::kWav || format == Format::kAiff || forced) {
    if (auto exact = try_exact([&] { return flatten_audio_exact(file); }, why)) {
      return std::move(*exact);
    }
  }
  if (options.samples) return flatten_audio_samples(file);
  if (!forced) return as_bytes(Modality::kRaw, file);
  if (modality_of(format) == Modality::kAudio && format != Format::kWav &&
      format != Format::kAiff) {
    why = std::string(format_name(format)) +
          " stores compressed samples, so coding it as audio cannot keep its bytes";
  }
  throw Error(ErrorCode::kUnsupportedInput, why + kSamplesHint);
}

}  // namespace

Flattened flatten(std::span<const uint8_t> file, const FlattenOptions& options) {
  if (options.tile != 0 && !valid_tile(static_cast<uint32_t>(options.tile))) {
    throw Error(ErrorCode::kUsageBadArgument,
                "tile " + std::to_string(options.tile) + ": expected 4, 8 or 16");
  }
  const uint32_t tile = options.tile ? static_cast<uint32_t>(options.tile) : kDefaultTile;
  const Format format = detect_format(file);
  const Modality modality = options.as.value_or(modality_of(format));
  switch (modality) {
    case Modality::kRaw:
    case Modality::kText:
      return as_bytes(modality, file);
    case Modality::kImage:
      return flatten_image(file, format, options, tile);
    case Modality::kAudio:
      return flatten_audio(file, format, options);
  }
  throw Error(ErrorCode::kUsageBadArgument,
              "--as: unknown modality " + std::to_string(int(modality)));
}

std::vector<uint8_t> unflatten(Modality modality, std::span<const uint8_t> params,
                               std::span<const uint8_t> stream) {
  if (modality == Modality::kRaw || modality == Modality::kText) {
    check_no_params(modality, params);
    return {stream.begin(), stream.end()};
  }
  if (modality != Modality::kImage && modality != Modality::kAudio) {
    throw Error(ErrorCode::kFormatField,
                "modality " + std::to_string(int(modality)) + " is not 0..3");
  }
  ParamReader r(params, std::string(modality_name(modality)) + " params");
  switch (read_kind(r, modality)) {
    case TransformKind::kImageExact: {
      const ImageExact x = parse_image_exact(r);
      r.finish();
      check_stream_size("image stream", x.image.geometry().size(), stream.size());
      const std::vector<uint8_t> raster = untile_image(x.image, stream);
      std::vector<uint8_t> out;
      out.reserve(x.header.size() + x.layout.payload_size() + x.trailer.size());
      out.insert(out.end(), x.header.begin(), x.header.end());
      payload_from_raster(x.layout, raster, out);
      out.insert(out.end(), x.trailer.begin(), x.trailer.end());
      return out;
    }
    case TransformKind::kImagePixels: {
      const ImagePixels x = parse_image_pixels(r);
      r.finish();
      check_stream_size("image stream", x.image.geometry().size(), stream.size());
      const uint32_t channels = x.image.channels + (x.image.alpha ? 1 : 0);
      return encode_png(
          Image{x.image.width, x.image.height, channels, untile_image(x.image, stream)});
    }
    case TransformKind::kAudioExact: {
      const AudioExact x = parse_audio_exact(r);
      r.finish();
      check_stream_size("audio stream", x.audio.frames * x.audio.channels * 2, stream.size());
      std::vector<uint8_t> out;
      out.reserve(x.header.size() + stream.size() + x.trailer.size());
      out.insert(out.end(), x.header.begin(), x.header.end());
      out.insert(out.end(), stream.begin(), stream.end());
      if (x.big_endian) swap_byte_pairs(std::span(out).subspan(x.header.size()));
      out.insert(out.end(), x.trailer.begin(), x.trailer.end());
      return out;
    }
    case TransformKind::kAudioSamples: {
      const AudioSamples x = parse_audio_samples(r);
      r.finish();
      check_stream_size("audio stream", x.audio.frames * x.audio.channels * 2, stream.size());
      const Pcm16 pcm{x.audio.sample_rate, x.audio.channels, bytes_to_samples(stream)};
      return encode_audio(pcm, x.container, x.bits);
    }
  }
  throw Error(ErrorCode::kFormatField, "unreachable transform kind");  // read_kind checked it
}

std::optional<ImageParams> image_params(Modality modality, std::span<const uint8_t> params) {
  if (modality != Modality::kImage) return std::nullopt;
  ParamReader r(params, "image params");
  if (read_kind(r, modality) == TransformKind::kImageExact) {
    const ImageExact x = parse_image_exact(r);
    r.finish();
    return x.image;
  }
  const ImagePixels x = parse_image_pixels(r);
  r.finish();
  return x.image;
}

std::optional<AudioParams> audio_params(Modality modality, std::span<const uint8_t> params) {
  if (modality != Modality::kAudio) return std::nullopt;
  ParamReader r(params, "audio params");
  if (read_kind(r, modality) == TransformKind::kAudioExact) {
    const AudioExact x = parse_audio_exact(r);
    r.finish();
    return x.audio;
  }
  const AudioSamples x = parse_audio_samples(r);
  r.finish();
  return x.audio;
}

std::string describe(Modality modality, std::span<const uint8_t> params) {
  if (modality == Modality::kRaw || modality == Modality::kText) {
    check_no_params(modality, params);
    return "byte-exact original";
  }
  if (const auto image = image_params(modality, params)) {
    const uint32_t channels = image->channels + (image->alpha ? 1 : 0);
    const std::string shape =
        std::to_string(image->width) + "x" + std::to_string(image->height) + ", " +
        std::to_string(channels) + (channels == 1 ? " channel" : " channels") + ", " +
        std::to_string(image->tile) + "x" + std::to_string(image->tile) + " tiles";
    if (image->kind == TransformKind::kImageExact) {
      return "byte-exact original (" + std::string(format_name(image->source)) + ", " + shape + ")";
    }
    const char* what = image->source == Format::kGif ? "PNG with the first frame's pixels"
                                                     : "PNG with identical pixels";
    return std::string(what) + " (from " +
           (image->source == Format::kUnknown ? std::string("an undetected format")
                                              : format_name(image->source)) +
           ", " + shape + ")";
  }
  if (const auto audio = audio_params(modality, params)) {
    const std::string shape =
        std::to_string(audio->channels) + (audio->channels == 1 ? " channel, " : " channels, ") +
        std::to_string(audio->sample_rate) + " Hz, " + std::to_string(audio->frames) + " frames";
    if (audio->kind == TransformKind::kAudioExact) {
      return "byte-exact original (" + std::string(format_name(audio->source)) + ", " + shape + ")";
    }
    ParamReader r(params, "audio params");
    read_kind(r, modality);
    const AudioSamples x = parse_audio_samples(r);
    const std::string samples =
        x.lossy ? " with the decoded 16-bit samples" : " with identical samples";
    return container_name(x.container) + samples + " (from " + format_name(audio->source) + ", " +
           std::to_string(x.bits) + "-bit, " + shape + ")";
  }
  throw Error(ErrorCode::kFormatField,
              "modality " + std::to_string(int(modality)) + " is not 0..3");
}

bool restores_original(Modality modality, std::span<const uint8_t> params) {
  if (const auto image = image_params(modality, params)) {
    return image->kind == TransformKind::kImageExact;
  }
  if (const auto audio = audio_params(modality, params)) {
    return audio->kind == TransformKind::kAudioExact;
  }
  if (modality == Modality::kRaw || modality == Modality::kText) {
    check_no_params(modality, params);
    return true;
  }
  throw Error(ErrorCode::kFormatField,
              "modality " + std::to_string(int(modality)) + " is not 0..3");
}

std::string output_extension(Modality modality, std::span<const uint8_t> params) {
  if (const auto image = image_params(modality, params)) {
    return image->kind == TransformKind::kImagePixels ? ".png" : "";
  }
  if (const auto audio = audio_params(modality, params)) {
    if (audio->kind != TransformKind::kAudioSamples) return "";
    ParamReader r(params, "audio params");
    read_kind(r, modality);
    return parse_audio_samples(r).container == AudioContainer::kFlac ? ".flac" : ".wav";
  }
  if (modality == Modality::kRaw || modality == Modality::kText) check_no_params(modality, params);
  return "";
}

Units units(Modality modality, std::span<const uint8_t> params) {
  Units u;
  if (const auto image = image_params(modality, params)) {
    u.subpixels =
        uint64_t{image->width} * image->height * (image->channels + (image->alpha ? 1 : 0));
  } else if (const auto audio = audio_params(modality, params)) {
    u.samples = audio->frames * audio->channels;
  }
  return u;
}

}  // namespace mbz::io
