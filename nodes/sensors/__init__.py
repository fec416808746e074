"""Pure sensor libraries (event cameras, wearable IMUs): numpy, file formats and simulators; of the runtime they import only the stdlib-only `runtime.filetype`."""
