"""Model families: the frozen encoder with its heads (the fast path) and the fine-tuned encoders (the full
path). The only package that imports torch and transformers."""
