"""Priority for residents who depend on power: grants, and municipalities' hold-back rules."""
