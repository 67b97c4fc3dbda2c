#!/usr/bin/env bash
# On the GPU machine: the exactness checks of an exact model file, CUDA against CPU. Table
# hashes of the tests' fixed input at several batch sizes and thread counts; one text, image
# and audio file of the valid split compressed on each device and decompressed on the
# other; CUDA speed on a larger text sample.
#
#   bash bench/gpu/exact.sh MODEL OUT_DIR
set -o pipefail
model=$1 out=$2
mbz=build-cuda/mbz
mkdir -p "$out"
if [[ ${HASH:-1} == 1 ]]; then
  build-cuda/bench/table_hash "$model" cuda 1,3,64,256 1 0,1,2,3 | tee "$out/hash-cuda.txt"
  build-cuda/bench/table_hash "$model" cpu 1,3,64 1,2 0,1,2,3 | tee "$out/hash-cpu.txt"
fi
for m in text image audio; do
  f=$(find "data/gpu/corpus/$m/valid" -type f | sort | head -1)
  cp "$f" "$out/$m.orig"
  for d in cuda cpu; do
    /usr/bin/time -f "$m compress $d %es" $mbz compress -q -f --model "$model" --device $d \
      "$f" -o "$out/$m.$d.mbz"
  done
  cmp "$out/$m.cuda.mbz" "$out/$m.cpu.mbz" && echo "$m: archives made on cuda and cpu are identical"
  /usr/bin/time -f "$m decompress cuda->cpu %es" $mbz decompress -q -f --model "$model" \
    --device cpu "$out/$m.cuda.mbz" -o "$out/$m.from-cuda"
  /usr/bin/time -f "$m decompress cpu->cuda %es" $mbz decompress -q -f --model "$model" \
    --device cuda "$out/$m.cpu.mbz" -o "$out/$m.from-cpu"
  cmp "$f" "$out/$m.from-cuda" && cmp "$f" "$out/$m.from-cpu" && echo "$m: $(stat -c %s "$f") bytes round trip ok both ways"
  rm -f "$out/$m.from-cuda" "$out/$m.from-cpu"
done
# The model alone in lanes (format 4: a range coder a lane; on CUDA the decoder finds the
# bytes on the device): 256 KiB of valid text in 64 lanes, made on each device, decoded on
# the other.
bash bench/gpu/valid-text.sh data/gpu/corpus 262144 /tmp/lanes.txt
for d in cuda cpu; do
  $mbz compress -q -f --level 3 --no-cm --zstd-level 0 --lanes 64 --model "$model" --device $d \
    /tmp/lanes.txt -o "/tmp/lanes.$d.mbz"
done
cmp /tmp/lanes.cuda.mbz /tmp/lanes.cpu.mbz && echo "lanes: archives made on cuda and cpu are identical"
$mbz decompress -q -f --model "$model" --device cpu /tmp/lanes.cuda.mbz -o /tmp/lanes.from-cuda
$mbz decompress -q -f --model "$model" --device cuda /tmp/lanes.cpu.mbz -o /tmp/lanes.from-cpu
cmp /tmp/lanes.txt /tmp/lanes.from-cuda && cmp /tmp/lanes.txt /tmp/lanes.from-cpu &&
  echo "lanes: $(stat -c %s /tmp/lanes.txt) bytes in 64 lanes round trip ok both ways ($(stat -c %s /tmp/lanes.cpu.mbz) bytes)"
# Speed: 2 MiB of valid text in one segment of 256 lanes of 8 KiB (one CUDA batch).
bash bench/gpu/valid-text.sh data/gpu/corpus 2097152 /tmp/speed.txt
/usr/bin/time -f "speed: 2 MiB compress cuda %es" timeout 120 $mbz compress -q -f --zstd-level 0 \
  --lanes 256 --model "$model" --device cuda /tmp/speed.txt -o /tmp/speed.mbz
/usr/bin/time -f "speed: 2 MiB decompress cuda %es" timeout 120 $mbz decompress -q -f \
  --model "$model" --device cuda /tmp/speed.mbz -o /tmp/speed.out
cmp /tmp/speed.txt /tmp/speed.out && echo "speed: $(stat -c %s /tmp/speed.mbz) bytes"
