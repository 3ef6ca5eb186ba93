# Build fragment for models/clip/.
