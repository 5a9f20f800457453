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

/* tokenizer.json: the Qwen file is 11 MB. */
#define VELA_TOKENIZER_MAX_BYTES (256u * 1024u * 1024u)

#endif
