// scratch runner for the pre-change bench copies (deleted after issue 18's before figures)
const m = await import(new URL(process.argv[2], import.meta.url).href) as { run: (a: string[]) => Promise<unknown> }
console.log(JSON.stringify(await m.run(process.argv.slice(3))))
process.exit(0)
