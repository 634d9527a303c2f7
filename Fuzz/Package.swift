// swift-tools-version:5.3
// The fuzz targets (libFuzzer), a package of their own so that the sanitizer flags never touch the
// product's build. Tools version 5.3 on purpose: its plain targets with a main.swift link as
// executables without a Swift `main`, which libFuzzer provides. Build and run with scripts/fuzz.sh.
import PackageDescription

let targets = ["FuzzPNG", "FuzzJPEG", "FuzzSafeTensors", "FuzzExperiment", "FuzzMNIST"]

let package = Package(
    name: "WorkbenchFuzz",
    dependencies: [.package(name: "workbench", path: "..")],
    targets: targets.map { .target(name: $0, dependencies: [.product(name: "WorkbenchKit", package: "workbench")]) }
)
