"""The vision backends: each answers a :class:`labeeb.vision.backend.VisionRequest`.

``transformers`` runs the model in this process (through Labeeb's engine, labeeb.vision.engine),
``mlx`` on Apple Silicon through MLX, ``openai`` on a remote OpenAI-compatible server, and
``fallback`` chains them (with OCR last) when one is down. The protocol they follow is in
labeeb.vision.backend; the processor every plugin calls is labeeb.vision.processor.
"""
