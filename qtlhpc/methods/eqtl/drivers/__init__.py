"""Stage drivers of the eQTL method."""
