"""Provider adapters (installed as qhw.backends): one module per provider."""
