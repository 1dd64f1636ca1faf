// An ES module task: named "reverse" after its file.
export default async function reverse(config) {
  return {
    reversed: String(config.text ?? '')
      .split('')
      .reverse()
      .join(''),
  };
}
