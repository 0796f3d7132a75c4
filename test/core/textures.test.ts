import { describe, expect, it } from 'vitest'
import { createTextureMatcher, isDataTextureName } from '../../src/core/textures.ts'

describe('isDataTextureName', () => {
  it.each([
    // glTF sample models and Blender's glTF exporter
    'DamagedHelmet_normal.png',
    'assets/Moss_normal-DiwrgTda.png',
    'Moss_occlusionRoughnessMetallic.png',
    'assets/Moss_occlusionRoughnessMetallic-B7xQ2a9_.png',
    'Helmet_metallicRoughness.png',
    'Material_emissive_occlusion.jpg',
    // three.js examples
    'water_normals.jpg',
    'hardwood2_bump.jpg',
    'hardwood2_roughness.jpg',
    'brick_bump.jpg',
    'CupsNormal.jpg',
    'RockNormalMap.jpg',
    'terrain-heightmap.png',
    'floor_metalness.jpg',
    // Poly Haven
    'wood_planks_nor_gl_1k.png',
    'wood_planks_nor_dx_4k.jpg',
    'wood_planks_rough_1k.png',
    'wood_planks_arm_1k.png',
    'wood_planks_disp_1k.png',
    'wood_planks_ao_1k.jpg',
    'textures/wood_planks_ao_1k.3fa1c2d4.jpg',
    // ambientCG
    'Leaves007_1K_NormalGL.png',
    'Metal032_1K-JPG_NormalDX.jpg',
    'Leaves007_1K_Roughness.jpg',
    'Leaves007_1K_Metalness.jpg',
    'Leaves007_1K_Displacement.png',
    'Leaves007_1K_AmbientOcclusion.jpg',
    // Substance / Unreal / others
    'T_Rock_ORM.png',
    'T_Rock_nrm.png',
    'RockAO.png',
    'MossORM.png',
    'Tiles_Height.png',
    'Tiles_Gloss.jpg',
    'static/media/Tiles_disp.d41d8cd98f00b204e9800998ecf8427e.png',
  ])('%s is a data texture', (name) => {
    expect(isDataTextureName(name)).toBe(true)
  })

  it.each([
    'hero.jpg',
    'assets/photo-DiwrgTda.jpg',
    'Leaves007_1K_Color.jpg',
    'wood_planks_diff_1k.jpg',
    'Moss_baseColor.jpg',
    'cups_diffuse.jpg',
    'screenshot-settings.png',
    'armchair.jpg',
    'taos-sunset.jpg',
    'ornament.png',
    'abnormality.png',
    'doormat.png',
    // An abbreviation that only a Vite/Rollup or webpack content hash spells is not a name.
    'assets/hero-ab_ao_k1.jpg',
    'assets/logo-AOrm_x9Q.png',
    'assets/team-photo-x_orm-12.png',
    'photos/Path.jpg',
  ])('%s is a picture', (name) => {
    expect(isDataTextureName(name)).toBe(false)
  })

  it('looks at the file name, not its folders', () => {
    expect(isDataTextureName('normal/hero.jpg')).toBe(false)
    expect(isDataTextureName('textures/roughness/wood.jpg')).toBe(false)
    expect(isDataTextureName('C:\\build\\assets\\Moss_normal.png')).toBe(true)
  })
})

describe('createTextureMatcher', () => {
  it("uses the name rule for 'lossless'", () => {
    const match = createTextureMatcher('lossless')
    expect(match('assets/Moss_normal-DiwrgTda.png')).toBe(true)
    expect(match('assets/hero-DiwrgTda.jpg')).toBe(false)
  })

  it("matches nothing for 'as-images'", () => {
    expect(createTextureMatcher('as-images')('Moss_normal.png')).toBe(false)
  })

  it('takes the globs instead of the name rule when given, case-insensitively, on the normalized path', () => {
    const match = createTextureMatcher(['**/maps/**', '**/*_N.png'])
    expect(match('assets/maps/rock.png')).toBe(true)
    expect(match('./assets/rock_n.png')).toBe(true)
    expect(match('assets/Moss_normal.png')).toBe(false)
  })
})
