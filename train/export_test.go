package train

// DenseAdjointMax lets tests pick the compression adjoint's path.
var DenseAdjointMax = &denseAdjointMax
