/**
 * Runs until SIGTERM or SIGINT, then closes cleanly (in-flight work finishes or is handed back); a second
 * signal exits at once. Resolves to the exit code.
 */
export function untilStopped(command: string, close: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        console.error(`megaoptim ${command}: ${signal} again, exiting without waiting`)
        process.exit(1)
      }
      stopping = true
      console.error(`megaoptim ${command}: ${signal} received, finishing in-flight work`)
      close().then(
        () => {
          console.error(`megaoptim ${command}: stopped`)
          resolve(0)
        },
        (error: unknown) => {
          console.error(`megaoptim ${command}: error while stopping: ${(error as Error).message}`)
          resolve(1)
        },
      )
    }
    // `on`, not `once`: a second signal must reach `stop` (exit now) instead of killing without a word.
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}
