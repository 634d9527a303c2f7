import ArgumentParser
import Foundation
import Workbench

struct WorkbenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workbench",
        abstract: "Train and run the VOC2007 segmentation U-Net and a DDPM on the CPU, from experiment files.",
        version: WorkbenchVersion.string,
        subcommands: [ForwardCommand.self])
}

WorkbenchCommand.main()
