package runtimeapi

// VmHWM is vmHWM, for the tests.
var VmHWM = vmHWM
