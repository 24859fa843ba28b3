"""Template filters of the console's templates (each a thin wrapper over ``registry.console.figures``)."""
