"""Pure sensor libraries (event cameras, wearable IMUs): numpy, file formats and simulators; they never import the runtime."""
