import './style.css'
import astronaut from './assets/astronaut.png'
import chelsea from './assets/chelsea.png'
import coffee from './assets/coffee.png'
import rocket from './assets/rocket.jpg'
import hubble from './assets/hubble_deep_field.jpg'
import logo from './assets/logo.png'
import animation from './assets/no_time_for_that_tiny.gif'

const images = [
  [astronaut, 'Astronaut Eileen Collins'],
  [chelsea, 'Chelsea the cat'],
  [coffee, 'A cup of coffee'],
  [rocket, 'A rocket launch'],
  [hubble, 'The Hubble deep field'],
  [logo, 'The scikit-image logo'],
  [animation, 'An animated GIF'],
]

const gallery = document.querySelector('#gallery')
for (const [src, alt] of images) {
  const figure = document.createElement('figure')
  const img = document.createElement('img')
  img.src = src
  img.alt = alt
  img.loading = 'lazy'
  const caption = document.createElement('figcaption')
  caption.textContent = alt
  figure.append(img, caption)
  gallery.append(figure)
}
