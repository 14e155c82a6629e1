"""Plain tensor image operations (no learnt weights, no registry) that archs, losses, data and models share."""
