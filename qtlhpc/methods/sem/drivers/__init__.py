"""Stage drivers of the SEM gene networks (``sem-edn``, ``sem-search``, ``sem-merge``)."""
