/* limits: every hard limit on untrusted input, in one place, each with its reason.
 * Changing one is a deliberate act: tests drive each limit both ways. */
#ifndef VELA_UTIL_LIMITS_H
#define VELA_UTIL_LIMITS_H

/* safetensors: real headers are a few hundred KB (the 72B index lists ~1,400 tensors);
 * 100 MB is what the format's own reference implementation accepts. */
#define VELA_ST_HEADER_MAX_BYTES (100u * 1024u * 1024u)
/* Tensors per file: guards quadratic overlap checks against absurd headers. */
#define VELA_ST_MAX_TENSORS 200000
/* Dimensions per tensor: Conv3d patch weights have 5; nothing real has more than 8. */
#define VELA_ST_MAX_DIMS 8
/* Shards per model: the 72B has 38; 4096 leaves room without unbounded allocation. */
#define VELA_MAX_SHARDS 4096
/* Tensor and file names. */
#define VELA_NAME_MAX 512

/* config.json and friends: real files are < 10 KB; 16 MB bounds a hostile one. */
#define VELA_CONFIG_MAX_BYTES (16u * 1024u * 1024u)
/* Model dimensions accepted from a config: above the 72B's sizes by a wide margin,
 * small enough that products of two of them fit comfortably in int64. */
#define VELA_CFG_MAX_HIDDEN       65536
#define VELA_CFG_MAX_INTERMEDIATE 262144
#define VELA_CFG_MAX_LAYERS       1024
#define VELA_CFG_MAX_HEADS        1024
#define VELA_CFG_MAX_HEAD_DIM     1024
#define VELA_CFG_MAX_VOCAB        4194304
#define VELA_CFG_MAX_POSITIONS    (16 * 1024 * 1024)
#define VELA_CFG_MAX_EOS_IDS      16
/* Vision tower geometry: real models use 14-pixel patches, 2-frame temporal patches, 2x2
 * merges and 3 channels; the bounds keep conv and merger shapes far inside int64. */
#define VELA_CFG_MAX_PATCH    256
#define VELA_CFG_MAX_MERGE    64
#define VELA_CFG_MAX_IN_CHANS 64
/* Vision attention window in pixels (112 in Qwen2.5-VL); past 2^20 no image has two. */
#define VELA_CFG_MAX_WINDOW (1 << 20)
/* preprocessor_config.json pixel budget: the default is 12,845,056 (16,384 tokens); 2^30
 * pixels is a 32768x32768 image, far past anything a context can hold. */
#define VELA_CFG_MAX_PIXELS (1LL << 30)

/* tokenizer.json: the Qwen file is 11 MB. */
#define VELA_TOKENIZER_MAX_BYTES (256u * 1024u * 1024u)

/* Chat templates (tokenizer/jinja*.c, chat_template.c). Templates come with models and messages
 * come from clients, so every resource a render can consume is bounded. */
/* Template source: real chat templates are under 20 KB; 1 MB leaves room for long ones. */
#define VELA_TPL_MAX_SOURCE_BYTES (1u << 20)
/* Nesting of blocks and expressions while parsing: real templates nest < 10 deep; the
 * parser is recursive, so this bounds its stack. */
#define VELA_TPL_MAX_NEST 64
/* Rendered prompt: a 128K-token context is about 0.5 MB of text; 32 MB is far above it. */
#define VELA_TPL_MAX_OUTPUT_BYTES (32u << 20)
/* Memory one render may allocate for values (strings built by concatenation included). */
#define VELA_TPL_MAX_HEAP_BYTES (256u << 20)
/* Loop iterations per render, all loops together: messages x content parts of a long
 * conversation stays far below; bounds render time under a hostile template. */
#define VELA_TPL_MAX_LOOP_ITERS 1000000u
/* Macro calls in progress (recursion). */
#define VELA_TPL_MAX_CALL_DEPTH 32
/* range() length: jinja2's sandbox refuses ranges above 100,000 items (MAX_RANGE). */
#define VELA_TPL_MAX_RANGE 100000
/* Nesting of values: JSON input and lists/dicts a template builds at run time. Printing and
 * comparing values recurse over it. */
#define VELA_TPL_MAX_VALUE_DEPTH 64
/* One string value (a concatenation, a replace, a repeat). */
#define VELA_TPL_MAX_STRING_BYTES (32u << 20)
/* chat_template.json / tokenizer_config.json holding a template: the Qwen tokenizer_config
 * is ~7 KB; configs with added-token tables reach a few MB. */
#define VELA_TPL_MAX_CONFIG_BYTES (64u << 20)

/* Tokenizer: added tokens per file (Qwen has 22, the largest known files a few thousand) and
 * the length of one (real ones are under 100 bytes); both bound the matcher's size. */
#define VELA_TOK_MAX_ADDED_TOKENS      65536
#define VELA_TOK_MAX_ADDED_TOKEN_BYTES 4096
/* Text per encode call: 64 MiB is far above any context length in bytes (131072 tokens of
 * at most ~16 bytes each) and keeps offsets comfortably in 32 bits. */
#define VELA_TOK_MAX_INPUT_BYTES (64u * 1024u * 1024u)

/* Sampling parameters (engine/params.h), fixed arrays so the struct stays a plain value. */
/* logit_bias entries: OpenAI clients send a few dozen; 1024 bounds a hostile map (8 KB). */
#define VELA_SP_MAX_LOGIT_BIAS 1024
/* stop_token_ids: real requests list a handful. */
#define VELA_SP_MAX_STOP_TOKEN_IDS 64
/* Top logprobs per token: OpenAI's top_logprobs maximum is 20. */
#define VELA_SP_MAX_LOGPROBS 20
/* n (parallel samples): OpenAI allows up to 128. */
#define VELA_SP_MAX_N 128
/* Stop strings per request (engine/stop.c): OpenAI accepts at most 4; vLLM takes any list,
 * and every list is scanned after each token, so 16 keeps that scan small. */
#define VELA_STOP_MAX_STRINGS 16
/* Bytes per stop string: real ones are a word or a tag; the held-back text of a stream is
 * at most this minus one, so 256 also bounds what a client waits for. */
#define VELA_STOP_MAX_BYTES 256

/* Engine (engine/sched.c, block_pool.c, encoder_cache.c). */
/* Tokens per request record: a 128K context plus headroom; bounds the token array a request
 * owns and keeps token counts in int32. */
#define VELA_REQ_MAX_TOKENS (1 << 20)
/* Images per request: vLLM V1 allows 999 per modality by default. */
#define VELA_REQ_MAX_IMAGES 1024
/* KV block size in tokens: vLLM accepts up to 256 (powers of two). */
#define VELA_KV_MAX_BLOCK_SIZE 256
/* KV blocks in one pool: 2^24 blocks x 16 tokens is 256M tokens, past any device memory. */
#define VELA_KV_MAX_BLOCKS (1 << 24)

/* Images (vision/decode.c, vision/preprocess.c). Clients send untrusted bytes, so every size
 * is checked from the header before a pixel buffer is allocated (decompression bombs). */
/* Encoded image: a 4096x4096 PNG photo is ~30 MB; 64 MiB is above any real upload (OpenAI
 * caps images at 20 MB) and bounds the copy a request may hold. */
#define VELA_IMG_MAX_ENCODED_BYTES (64u * 1024u * 1024u)
/* One side in pixels: panoramas with the 200:1 aspect limit need long sides; 32768 is above
 * what phones and scanners produce (WebP itself stops at 16383). */
#define VELA_IMG_MAX_SIDE 32768
/* Decoded pixels: 2^26 = 8192x8192 (192 MiB of RGB) is 5x the default 12.8M-pixel budget, so
 * 50-megapixel photos decode, while one decode's memory stays bounded. */
#define VELA_IMG_MAX_PIXELS (1LL << 26)
/* Progressive JPEG scans: real files have < 20; crafted files with thousands of tiny scans
 * make libjpeg spend minutes on a few KB (the libjpeg-turbo advisory suggests 500). */
#define VELA_IMG_MAX_JPEG_SCANS 500
/* PNG ancillary chunks (iCCP, zTXt, iTXt) libpng may allocate or inflate: real ones are a
 * few KB; 8 MiB bounds compressed-text bombs. */
#define VELA_IMG_MAX_PNG_CHUNK_BYTES (8u * 1024u * 1024u)
/* Video frames per call (vision/preprocess.c): 768 is qwen-vl-utils' FPS_MAX_FRAMES. */
#define VELA_IMG_MAX_FRAMES 768
/* float32 values in one pixel_values (vision/preprocess.c): a video at qwen-vl-utils'
 * VIDEO_TOTAL_PIXELS budget (90.3M pixels over all frames) needs 271M; 2^29 (2 GiB) leaves
 * room and stops a frame count x size product from asking for more memory than exists. */
#define VELA_IMG_MAX_PV_VALUES (1LL << 29)

/* Vision tower (model/vit.c): patches per forward call. The default pixel budget gives 65,536
 * patches per image; 2^24 leaves room for many images or long videos in one call while every
 * row, unit and window index stays far inside int32. */
#define VELA_VIT_MAX_PATCHES (1 << 24)

#endif
