package io.chrootbooter.agent;

import io.chrootbooter.agent.daemon.RunCommand;
import io.chrootbooter.agent.fetch.FetchCommand;
import io.chrootbooter.agent.pivot.ReturnCheckCommand;
import io.chrootbooter.agent.unpack.MountCommand;
import io.chrootbooter.agent.unpack.UnpackCommand;
import io.quarkus.picocli.runtime.annotations.TopCommand;
import picocli.CommandLine.Command;

/** The agent's command line; each subcommand lives in its feature package. */
@TopCommand
@Command(
    name = "node-agent",
    mixinStandardHelpOptions = true,
    description = "Chroot Booter node agent.",
    subcommands = {
      RunCommand.class,
      FetchCommand.class,
      UnpackCommand.class,
      MountCommand.class,
      ReturnCheckCommand.class
    })
public class AgentCommand {}
