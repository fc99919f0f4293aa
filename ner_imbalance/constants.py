"""One home for the constants that several parts of the package share.

Losses, data, evaluation, the trainer and the study import these names; none defines its own copy.
"""

from __future__ import annotations

IGNORE_INDEX = -100
"""Label id of positions that get no loss and no prediction (padding, special and continuation sub-tokens)."""

OUTSIDE = "O"
"""The tag of a word outside every entity."""

TAG_SCHEMES = ("iob2", "iob1", "bioes", "iobes")
"""Input tag schemes `--tag_scheme` accepts: IOB1 is converted to IOB2; BIOES/IOBES are kept."""

NO_CLASS_WEIGHTS = "none"
EFFECTIVE_NUMBER = "effective_number"
CLASS_WEIGHT_METHODS = ("inverse_frequency", "sqrt_inverse_frequency", EFFECTIVE_NUMBER)
"""How class weights are derived from training-tag frequencies (`--class_weights`, besides `none`)."""
EFFECTIVE_NUMBER_BETA = 0.999
"""Default beta of `effective_number` class weights (`--class_weight_beta`; Cui et al., CVPR 2019)."""

ENTITY_METRICS = ("precision", "recall", "f1")
"""Entity-level scores reported for the whole corpus and for each entity type."""
TYPE_METRICS = (*ENTITY_METRICS, "support")
"""Per-type values of an evaluation: the scores and the number of gold entities."""
OVERALL_METRICS = (*ENTITY_METRICS, "macro_f1")
"""Corpus-level values the study aggregates: micro scores and the unweighted mean of per-type F1."""

CALIBRATION_MODES = ("outside", "per_type")
"""Decision-bias calibration modes (`calibration.search_bias`, `--calibrate`, a study config's `calibration`)."""

LOSS_SHARE_PREFIX = "loss_share/"
"""Training-log key prefix of the share of the loss from one gold group (`O` or an entity type)."""
GOLD_PROBABILITY_PREFIX = "p_gold/"
"""Training-log key prefix of one gold group's mean probability of its gold label."""

MAX_SEQ_LENGTH = 128
"""Default sub-tokens per window (`--max_seq_length`); longer sentences are split into overlapping windows."""
STRIDE = 32
"""Default sub-tokens that consecutive windows of a long sentence share (`--stride`)."""

IOB2 = "IOB2"
"""Canonical name of the IOB2 tag scheme (`B-X` begins an entity, `I-X` continues it)."""
IOBES = "IOBES"
"""Canonical name of the IOBES (BIOES) tag scheme (`B-`, `I-`, `E-` for the end, `S-` for single-word entities)."""
ARGMAX = "argmax"
VITERBI = "viterbi"
DECODING_METHODS = (ARGMAX, VITERBI)
"""How word-level scores become tags (`ner_imbalance.decoding.decode`): each word's best tag, or the best valid
sequence under the scheme's transition constraints."""
DECODING_CONFIG_KEY = "ner_decoding"
"""The key of a trained model's `config.json` that records its decoding (what evaluation used, and prediction uses)."""
TAG_SCHEME_CONFIG_KEY = "ner_tag_scheme"
"""The key of a trained model's `config.json` that records the tag scheme of its labels ("IOB2" or "IOBES")."""
PIPELINE_TASK = "ner-imbalance"
"""The `transformers.pipeline` task of `inference.pipeline.NerPipeline` (registered when `ner_imbalance.inference`
is imported): a model folder's own windows and decoding, entities as the token-classification pipeline gives them."""

REPEAT_FACTOR = "repeat_factor"
WEIGHTED = "weighted"
SAMPLING_MODES = (REPEAT_FACTOR, WEIGHTED)
"""How `data.sampling.SentenceRepeatSampler` draws an epoch's sentences from their factors (`--sentence_sampling`)."""
NO_SAMPLING = "none"
"""`--sentence_sampling none`: every training window once per epoch, in the Trainer's own order."""
REPEAT_THRESHOLD = 0.1
"""Default threshold t of `--repeat_threshold`: entity types in fewer than 10 % of the sentences are repeated."""

MENTION_REPLACEMENT = "mention_replacement"
AUGMENTATIONS = (MENTION_REPLACEMENT,)
"""Training-data augmentations (`--augment`; `data.augmentation`): mention replacement (Dai and Adel, COLING 2020)."""
NO_AUGMENTATION = "none"
"""`--augment none`: the training sentences as they are."""
