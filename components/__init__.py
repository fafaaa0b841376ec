"""Pipeline components: each subpackage exposes one `run(...)` entry taking and returning artifact paths.

Components never import each other; what they share lives in `components.common`, and what
passes between them is an artifact on disk whose format is written down in `schemas/`.
"""
